//! Translations of the intervention catalogue's texts ([`crate::vendor_health`]): one table
//! per intervention, holding its title and Markdown description in every language of
//! [`TRANSLATED`]. The en-US texts stay with the adapters that define the interventions;
//! these tables say the same in other languages. Product, app and menu names (Enphase App,
//! Zaptec Portal, Google Home) and code (`TIME_OF_USE`) are kept as the vendors spell them.
//!
//! A catalogue intervention without a table is served in en-US in every language; a test
//! keeps every catalogue entry covered.

use oemgate_api::vendors::FALLBACK_LANGUAGE;
use oemgate_core::Intervention;

/// The languages the tables translate to, besides en-US.
pub const TRANSLATED: [&str; 5] = ["de-DE", "nb-NO", "fr-FR", "sv-SE", "es-ES"];

/// A title and a description in one language.
#[derive(Clone, Copy, Debug)]
pub struct Text {
    /// The resolution's title.
    pub title: &'static str,
    /// The resolution's Markdown description.
    pub description: &'static str,
}

/// One intervention's texts in every translated language.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    /// The intervention id.
    pub id: &'static str,
    /// German (de-DE).
    pub de: Text,
    /// Norwegian Bokmål (nb-NO).
    pub nb: Text,
    /// French (fr-FR).
    pub fr: Text,
    /// Swedish (sv-SE).
    pub sv: Text,
    /// Spanish (es-ES).
    pub es: Text,
}

impl Table {
    /// The text in `language`, if it is one of [`TRANSLATED`].
    pub fn text(&self, language: &str) -> Option<Text> {
        match language {
            "de-DE" => Some(self.de),
            "nb-NO" => Some(self.nb),
            "fr-FR" => Some(self.fr),
            "sv-SE" => Some(self.sv),
            "es-ES" => Some(self.es),
            _ => None,
        }
    }
}

/// en-US and the translated languages.
pub fn languages() -> Vec<&'static str> {
    std::iter::once(FALLBACK_LANGUAGE).chain(TRANSLATED).collect()
}

/// Puts the intervention's texts in `language` where a table has them (else leaves en-US).
pub fn translate(intervention: &mut Intervention, language: &str) {
    let text = TABLES.iter().find(|t| t.id == intervention.id).and_then(|t| t.text(language));
    if let Some(text) = text {
        intervention.resolution.title = text.title.to_owned();
        intervention.resolution.description = text.description.to_owned();
    }
}

/// Every table.
pub const TABLES: [Table; 14] = [
    ENPHASE_EXPORT_FOCUS,
    ENPHASE_IDLE,
    ENPHASE_CONSUMPTION_METER,
    SOLAREDGE_READ_ONLY,
    ZAPTEC_SHARED_INSTALLATION,
    ZAPTEC_INSTALLATION_ACCESS,
    ECOBEE_WRITE_SCOPE,
    NEST_FOLLOW_SCHEDULE,
    NEST_ECO_MODE,
    NEST_MODE_CONTROL,
    TESLA_EXPORT_FOCUS,
    TESLA_IDLE,
    SMA_READ_ONLY,
    HUAWEI_BATTERY_CONTROL,
];

const ENPHASE_EXPORT_FOCUS: Table = Table {
    id: oemgate_enphase::map::EXPORT_FOCUS_INTERVENTION_ID,
    de: Text {
        title: "Exportfokus ist bei Enphase IQ Batteries nicht verfügbar",
        description: "Enphase bietet keinen Modus, der die IQ Batteries zwingt, ins Netz zu \
                      entladen. Der *Savings Mode* (`TIME_OF_USE`) entlädt während der \
                      Spitzenzeiten des in der Enphase App eingestellten Tarifs und speist ein, \
                      wo die Einspeisung aus der Batterie erlaubt ist.",
    },
    nb: Text {
        title: "Eksportfokus er ikke tilgjengelig på Enphase IQ Batteries",
        description: "Enphase har ingen modus som tvinger IQ Batteries til å lade ut til \
                      strømnettet. *Savings Mode* (`TIME_OF_USE`) lader ut i topplasttimene i \
                      tariffen som er satt i Enphase App, og eksporterer der batterieksport er \
                      tillatt.",
    },
    fr: Text {
        title: "L'export prioritaire n'est pas disponible sur les Enphase IQ Batteries",
        description: "Enphase ne propose aucun mode qui force les IQ Batteries à se décharger \
                      vers le réseau. Le *Savings Mode* (`TIME_OF_USE`) décharge pendant les \
                      heures de pointe du tarif défini dans l'Enphase App et injecte là où \
                      l'export depuis la batterie est autorisé.",
    },
    sv: Text {
        title: "Exportfokus är inte tillgängligt för Enphase IQ Batteries",
        description: "Enphase har inget läge som tvingar IQ Batteries att ladda ur till elnätet. \
                      *Savings Mode* (`TIME_OF_USE`) laddar ur under topptimmarna i den tariff \
                      som är inställd i Enphase App och exporterar där batteriexport är \
                      tillåten.",
    },
    es: Text {
        title: "La prioridad de exportación no está disponible en las Enphase IQ Batteries",
        description: "Enphase no ofrece ningún modo que obligue a las IQ Batteries a \
                      descargarse hacia la red. El *Savings Mode* (`TIME_OF_USE`) descarga \
                      durante las horas punta de la tarifa configurada en la Enphase App y \
                      exporta donde se permite la exportación desde la batería.",
    },
};

const ENPHASE_IDLE: Table = Table {
    id: oemgate_enphase::map::IDLE_INTERVENTION_ID,
    de: Text {
        title: "Leerlauf ist bei Enphase IQ Batteries nicht verfügbar",
        description: "Enphase bietet keinen Modus, der die IQ Batteries im Leerlauf hält. Wird \
                      die Batteriereserve in der Enphase App angehoben, entladen sie sich nicht \
                      mehr.",
    },
    nb: Text {
        title: "Hvilemodus er ikke tilgjengelig på Enphase IQ Batteries",
        description: "Enphase har ingen modus som holder IQ Batteries i ro. Hvis du øker \
                      batterireserven i Enphase App, slutter de å lade ut.",
    },
    fr: Text {
        title: "La mise en veille n'est pas disponible sur les Enphase IQ Batteries",
        description: "Enphase ne propose aucun mode qui maintient les IQ Batteries au repos. \
                      Augmenter la réserve de la batterie dans l'Enphase App les empêche de se \
                      décharger.",
    },
    sv: Text {
        title: "Viloläge är inte tillgängligt för Enphase IQ Batteries",
        description: "Enphase har inget läge som håller IQ Batteries i vila. Om du höjer \
                      batterireserven i Enphase App slutar de att laddas ur.",
    },
    es: Text {
        title: "El modo inactivo no está disponible en las Enphase IQ Batteries",
        description: "Enphase no ofrece ningún modo que mantenga las IQ Batteries en reposo. \
                      Si aumenta la reserva de la batería en la Enphase App, dejan de \
                      descargarse.",
    },
};

const ENPHASE_CONSUMPTION_METER: Table = Table {
    id: oemgate_enphase::map::CONSUMPTION_METER_INTERVENTION_ID,
    de: Text {
        title: "Das Enphase-System hat keinen Verbrauchszähler",
        description: "Das IQ Gateway misst den Netzanschluss nur mit Verbrauchs-Stromwandlern \
                      (CTs). Ein Enphase-Installateur kann sie einbauen und aktivieren.",
    },
    nb: Text {
        title: "Enphase-anlegget har ingen forbruksmåler",
        description: "IQ Gateway måler nettilkoblingen bare med strømtransformatorer for \
                      forbruk (CT-er). En Enphase-installatør kan montere og aktivere dem.",
    },
    fr: Text {
        title: "Le système Enphase n'a pas de compteur de consommation",
        description: "L'IQ Gateway ne mesure le raccordement au réseau qu'avec des \
                      transformateurs de courant de consommation (CT). Un installateur Enphase \
                      peut les poser et les activer.",
    },
    sv: Text {
        title: "Enphase-systemet saknar förbrukningsmätare",
        description: "IQ Gateway mäter nätanslutningen bara med strömtransformatorer för \
                      förbrukning (CT). En Enphase-installatör kan montera och aktivera dem.",
    },
    es: Text {
        title: "El sistema Enphase no tiene medidor de consumo",
        description: "El IQ Gateway solo mide la conexión a la red con transformadores de \
                      corriente de consumo (CT). Un instalador de Enphase puede instalarlos y \
                      activarlos.",
    },
};

const SOLAREDGE_READ_ONLY: Table = Table {
    id: oemgate_solaredge::map::READ_ONLY_INTERVENTION_ID,
    de: Text {
        title: "SolarEdge-Batterien lassen sich über oemgate nicht steuern",
        description: "Die SolarEdge Monitoring API, die oemgate nutzt, ist schreibgeschützt: \
                      Sie meldet Erzeugung, Verbrauch und Batteriezustand, kann das \
                      Speicherprofil aber nicht ändern. Ändern Sie den Modus der Batterie in \
                      der mySolarEdge-App oder wenden Sie sich an Ihren Installateur.",
    },
    nb: Text {
        title: "SolarEdge-batterier kan ikke styres gjennom oemgate",
        description: "SolarEdge Monitoring API, som oemgate bruker, gir bare lesetilgang: den \
                      rapporterer produksjon, forbruk og batteritilstand, men kan ikke endre \
                      lagringsprofilen. Endre batteriets modus i mySolarEdge-appen, eller spør \
                      installatøren din.",
    },
    fr: Text {
        title: "Les batteries SolarEdge ne peuvent pas être pilotées via oemgate",
        description: "La SolarEdge Monitoring API qu'utilise oemgate est en lecture seule : \
                      elle indique la production, la consommation et l'état de la batterie, \
                      mais ne peut pas modifier le profil de stockage. Changez le mode de la \
                      batterie dans l'application mySolarEdge ou adressez-vous à votre \
                      installateur.",
    },
    sv: Text {
        title: "SolarEdge-batterier kan inte styras via oemgate",
        description: "SolarEdge Monitoring API, som oemgate använder, är skrivskyddat: det \
                      rapporterar produktion, förbrukning och batteristatus men kan inte ändra \
                      lagringsprofilen. Ändra batteriets läge i mySolarEdge-appen eller fråga \
                      din installatör.",
    },
    es: Text {
        title: "Las baterías SolarEdge no se pueden controlar a través de oemgate",
        description: "La SolarEdge Monitoring API que usa oemgate es de solo lectura: informa \
                      de la producción, el consumo y el estado de la batería, pero no puede \
                      cambiar el perfil de almacenamiento. Cambie el modo de la batería en la \
                      aplicación mySolarEdge o consulte a su instalador.",
    },
};

const ZAPTEC_SHARED_INSTALLATION: Table = Table {
    id: oemgate_zaptec::map::SHARED_INSTALLATION_INTERVENTION_ID,
    de: Text {
        title: "Die Ladestation teilt sich die Stromgrenze ihrer Installation",
        description: "Zaptec legt den verfügbaren Strom je Installation fest, und diese \
                      Installation hat mehrere Ladestationen, die ihn per Lastmanagement \
                      teilen. Eine Änderung würde auch die Grenze der anderen Ladestationen \
                      ändern, daher lässt er sich nicht für diese Ladestation allein \
                      einstellen. Der Eigentümer der Installation kann den verfügbaren Strom \
                      im Zaptec Portal einstellen oder den Installateur bitten, diese \
                      Ladestation in eine eigene Installation zu verschieben.",
    },
    nb: Text {
        title: "Laderen deler strømgrensen til installasjonen sin",
        description: "Zaptec setter tilgjengelig strøm per installasjon, og denne \
                      installasjonen har flere ladere som deler den gjennom lastbalansering. \
                      En endring ville også endre grensen for de andre laderne, så den kan \
                      ikke settes for denne laderen alene. Eieren av installasjonen kan sette \
                      tilgjengelig strøm i Zaptec Portal, eller be installatøren flytte \
                      laderen til en egen installasjon.",
    },
    fr: Text {
        title: "La borne partage la limite de courant de son installation",
        description: "Zaptec fixe le courant disponible par installation, et cette \
                      installation compte plusieurs bornes qui se le partagent par équilibrage \
                      de charge. Le modifier changerait aussi la limite des autres bornes ; il \
                      ne peut donc pas être réglé pour cette borne seule. Le propriétaire de \
                      l'installation peut régler le courant disponible dans le Zaptec Portal, \
                      ou demander à l'installateur de placer cette borne dans une installation \
                      à part.",
    },
    sv: Text {
        title: "Laddaren delar sin installations strömgräns",
        description: "Zaptec anger den tillgängliga strömmen per installation, och den här \
                      installationen har flera laddare som delar på den genom lastbalansering. \
                      En ändring skulle även ändra de andra laddarnas gräns, så den kan inte \
                      ställas in för den här laddaren ensam. Installationens ägare kan ställa \
                      in den tillgängliga strömmen i Zaptec Portal eller be installatören \
                      flytta laddaren till en egen installation.",
    },
    es: Text {
        title: "El cargador comparte el límite de corriente de su instalación",
        description: "Zaptec fija la corriente disponible por instalación, y esta instalación \
                      tiene varios cargadores que la comparten mediante el equilibrado de \
                      carga. Cambiarla cambiaría también el límite de los demás cargadores, \
                      así que no se puede ajustar solo para este cargador. El propietario de \
                      la instalación puede ajustar la corriente disponible en el Zaptec Portal \
                      o pedir al instalador que pase este cargador a una instalación propia.",
    },
};

const ZAPTEC_INSTALLATION_ACCESS: Table = Table {
    id: oemgate_zaptec::map::INSTALLATION_ACCESS_INTERVENTION_ID,
    de: Text {
        title: "Eigentümerzugriff auf die Zaptec-Installation ist nötig",
        description: "Zaptec legt den Ladestrom je Installation fest, und nur der Eigentümer \
                      der Installation darf ihn ändern. Bitten Sie den Eigentümer, diesem \
                      Zaptec-Benutzer im Zaptec Portal die Rolle *Owner* für die Installation \
                      zu geben, und verknüpfen Sie das Konto dann erneut.",
    },
    nb: Text {
        title: "Eiertilgang til Zaptec-installasjonen trengs",
        description: "Zaptec setter ladestrømmen per installasjon, og bare eieren av \
                      installasjonen kan endre den. Be eieren gi denne Zaptec-brukeren rollen \
                      *Owner* på installasjonen i Zaptec Portal, og koble deretter til kontoen \
                      på nytt.",
    },
    fr: Text {
        title: "Un accès propriétaire à l'installation Zaptec est nécessaire",
        description: "Zaptec fixe le courant de charge par installation, et seul le \
                      propriétaire de l'installation peut le modifier. Demandez au \
                      propriétaire d'attribuer à cet utilisateur Zaptec le rôle *Owner* sur \
                      l'installation dans le Zaptec Portal, puis reliez à nouveau le compte.",
    },
    sv: Text {
        title: "Ägaråtkomst till Zaptec-installationen krävs",
        description: "Zaptec anger laddströmmen per installation, och bara installationens \
                      ägare får ändra den. Be ägaren ge den här Zaptec-användaren rollen \
                      *Owner* för installationen i Zaptec Portal och koppla sedan kontot på \
                      nytt.",
    },
    es: Text {
        title: "Se necesita acceso de propietario a la instalación de Zaptec",
        description: "Zaptec fija la corriente de carga por instalación, y solo el \
                      propietario de la instalación puede cambiarla. Pida al propietario que \
                      asigne a este usuario de Zaptec el rol *Owner* en la instalación desde \
                      el Zaptec Portal y vuelva a vincular la cuenta.",
    },
};

const ECOBEE_WRITE_SCOPE: Table = Table {
    id: oemgate_ecobee::map::WRITE_SCOPE_INTERVENTION_ID,
    de: Text {
        title: "Das ecobee-Konto wurde nur mit Lesezugriff verknüpft",
        description: "Das ecobee-Konto hat oemgate nur Lesezugriff gewährt (`smartRead`). \
                      Verknüpfen Sie es erneut und genehmigen Sie die Anwendung im \
                      ecobee-Portal mit Schreibzugriff (`smartWrite`), um Holds zu setzen und \
                      den Zeitplan fortzusetzen.",
    },
    nb: Text {
        title: "ecobee-kontoen ble koblet til med bare lesetilgang",
        description: "ecobee-kontoen ga oemgate bare lesetilgang (`smartRead`). Koble den til \
                      på nytt og godkjenn applikasjonen med skrivetilgang (`smartWrite`) i \
                      ecobee-portalen for å sette holds og gjenoppta tidsplanen.",
    },
    fr: Text {
        title: "Le compte ecobee a été relié en lecture seule",
        description: "Le compte ecobee n'a accordé à oemgate qu'un accès en lecture \
                      (`smartRead`). Reliez-le à nouveau et approuvez l'application avec un \
                      accès en écriture (`smartWrite`) dans le portail ecobee pour définir des \
                      maintiens et reprendre le programme.",
    },
    sv: Text {
        title: "ecobee-kontot kopplades med endast läsbehörighet",
        description: "ecobee-kontot gav oemgate endast läsbehörighet (`smartRead`). Koppla det \
                      på nytt och godkänn applikationen med skrivbehörighet (`smartWrite`) i \
                      ecobee-portalen för att kunna sätta holds och återuppta schemat.",
    },
    es: Text {
        title: "La cuenta de ecobee se vinculó solo con acceso de lectura",
        description: "La cuenta de ecobee solo concedió a oemgate acceso de lectura \
                      (`smartRead`). Vuelva a vincularla y apruebe la aplicación con acceso de \
                      escritura (`smartWrite`) en el portal de ecobee para fijar retenciones y \
                      reanudar la programación.",
    },
};

const NEST_FOLLOW_SCHEDULE: Table = Table {
    id: oemgate_nest::map::FOLLOW_SCHEDULE_INTERVENTION_ID,
    de: Text {
        title: "Die Rückkehr zum Zeitplan ist bei Nest-Thermostaten nicht verfügbar",
        description: "Googles Device Access API bietet keine Steuerung des Zeitplans. Der \
                      Zeitplan lässt sich in der Google Home- oder Nest-App fortsetzen; eine \
                      dort vorgenommene manuelle Änderung gilt bis zur nächsten geplanten \
                      Temperatur.",
    },
    nb: Text {
        title: "Å gå tilbake til tidsplanen er ikke tilgjengelig for Nest-termostater",
        description: "Googles Device Access API har ingen styring av tidsplanen. Tidsplanen \
                      kan gjenopptas i Google Home- eller Nest-appen; en manuell endring gjort \
                      der varer til neste planlagte temperatur.",
    },
    fr: Text {
        title: "Le retour au programme n'est pas disponible pour les thermostats Nest",
        description: "La Device Access API de Google ne permet pas de piloter le programme. Le \
                      programme peut être repris dans l'application Google Home ou Nest ; une \
                      modification manuelle faite là dure jusqu'à la prochaine température \
                      programmée.",
    },
    sv: Text {
        title: "Att återgå till schemat är inte tillgängligt för Nest-termostater",
        description: "Googles Device Access API saknar styrning av schemat. Schemat kan \
                      återupptas i Google Home- eller Nest-appen; en manuell ändring som görs \
                      där gäller till nästa schemalagda temperatur.",
    },
    es: Text {
        title: "Volver a la programación no está disponible en los termostatos Nest",
        description: "La Device Access API de Google no permite controlar la programación. La \
                      programación se puede reanudar en la aplicación Google Home o Nest; un \
                      cambio manual hecho allí dura hasta la siguiente temperatura \
                      programada.",
    },
};

const NEST_ECO_MODE: Table = Table {
    id: oemgate_nest::map::ECO_MODE_INTERVENTION_ID,
    de: Text {
        title: "Der Eco-Modus ist aktiv",
        description: "Solange Eco aktiv ist, hält das Thermostat seine Eco-Temperaturen und \
                      lehnt neue Sollwerte ab. Schalten Sie Eco in der Google Home- oder \
                      Nest-App (oder am Thermostat) aus.",
    },
    nb: Text {
        title: "Eco-modus er på",
        description: "Så lenge Eco er på, holder termostaten Eco-temperaturene sine og avviser \
                      nye settpunkter. Slå av Eco i Google Home- eller Nest-appen (eller på \
                      termostaten).",
    },
    fr: Text {
        title: "Le mode Eco est activé",
        description: "Tant que le mode Eco est activé, le thermostat conserve ses températures \
                      Eco et refuse toute nouvelle consigne. Désactivez Eco dans l'application \
                      Google Home ou Nest (ou sur le thermostat).",
    },
    sv: Text {
        title: "Eco-läget är på",
        description: "Så länge Eco är på håller termostaten sina Eco-temperaturer och avvisar \
                      nya börvärden. Stäng av Eco i Google Home- eller Nest-appen (eller på \
                      termostaten).",
    },
    es: Text {
        title: "El modo Eco está activado",
        description: "Mientras Eco está activado, el termostato mantiene sus temperaturas Eco \
                      y rechaza nuevas consignas. Desactive Eco en la aplicación Google Home o \
                      Nest (o en el termostato).",
    },
};

const NEST_MODE_CONTROL: Table = Table {
    id: oemgate_nest::map::MODE_CONTROL_INTERVENTION_ID,
    de: Text {
        title: "Der Modus des Thermostats wird nicht freigegeben",
        description: "Das Thermostat gibt seinen Modus nicht an Device Access weiter. Geben Sie \
                      das Thermostat in der Google Home-App (Partnerverbindungen) erneut für \
                      oemgate frei und erlauben Sie die Steuerung.",
    },
    nb: Text {
        title: "Termostatens modus er ikke delt",
        description: "Termostaten deler ikke modusen sin med Device Access. Del termostaten \
                      med oemgate på nytt i Google Home-appen (Partnertilkoblinger) og tillat \
                      styring.",
    },
    fr: Text {
        title: "Le mode du thermostat n'est pas partagé",
        description: "Le thermostat ne communique pas son mode à Device Access. Partagez à \
                      nouveau le thermostat avec oemgate dans l'application Google Home \
                      (Connexions partenaires) et autorisez le contrôle.",
    },
    sv: Text {
        title: "Termostatens läge delas inte",
        description: "Termostaten delar inte sitt läge med Device Access. Dela termostaten med \
                      oemgate igen i Google Home-appen (Partneranslutningar) och tillåt \
                      styrning.",
    },
    es: Text {
        title: "El modo del termostato no se comparte",
        description: "El termostato no comparte su modo con Device Access. Vuelva a compartir \
                      el termostato con oemgate en la aplicación Google Home (Conexiones de \
                      partners) y permita el control.",
    },
};

const TESLA_EXPORT_FOCUS: Table = Table {
    id: oemgate_tesla::map::EXPORT_FOCUS_INTERVENTION_ID,
    de: Text {
        title: "Exportfokus ist bei der Tesla Powerwall nicht verfügbar",
        description: "Tesla bietet keinen Modus, der die Powerwall zwingt, ins Netz zu \
                      entladen. In der Tesla-App lässt *Time-Based Control* mit aktivierter \
                      Netzeinspeisung die Powerwall einspeisen, wenn die Preise hoch sind; \
                      verwenden Sie stattdessen den Modus `TIME_OF_USE`.",
    },
    nb: Text {
        title: "Eksportfokus er ikke tilgjengelig på Tesla Powerwall",
        description: "Tesla har ingen modus som tvinger Powerwall til å lade ut til \
                      strømnettet. I Tesla-appen lar *Time-Based Control* med netteksport \
                      slått på Powerwall eksportere når prisene er høye; bruk modusen \
                      `TIME_OF_USE` i stedet.",
    },
    fr: Text {
        title: "L'export prioritaire n'est pas disponible sur la Tesla Powerwall",
        description: "Tesla ne propose aucun mode qui force la Powerwall à se décharger vers \
                      le réseau. Dans l'application Tesla, le *Time-Based Control* avec \
                      l'export vers le réseau activé permet à la Powerwall d'injecter quand les \
                      prix sont élevés ; utilisez plutôt le mode `TIME_OF_USE`.",
    },
    sv: Text {
        title: "Exportfokus är inte tillgängligt för Tesla Powerwall",
        description: "Tesla har inget läge som tvingar Powerwall att ladda ur till elnätet. I \
                      Tesla-appen låter *Time-Based Control* med nätexport påslagen Powerwall \
                      exportera när priserna är höga; använd läget `TIME_OF_USE` i stället.",
    },
    es: Text {
        title: "La prioridad de exportación no está disponible en la Tesla Powerwall",
        description: "Tesla no ofrece ningún modo que obligue a la Powerwall a descargarse \
                      hacia la red. En la aplicación de Tesla, *Time-Based Control* con la \
                      exportación a la red activada permite que la Powerwall exporte cuando \
                      los precios son altos; use en su lugar el modo `TIME_OF_USE`.",
    },
};

const TESLA_IDLE: Table = Table {
    id: oemgate_tesla::map::IDLE_INTERVENTION_ID,
    de: Text {
        title: "Leerlauf ist bei der Tesla Powerwall nicht verfügbar",
        description: "Tesla bietet keinen Modus, der die Powerwall im Leerlauf hält. Wird die \
                      Notstromreserve in der Tesla-App angehoben, entlädt sie sich nicht mehr.",
    },
    nb: Text {
        title: "Hvilemodus er ikke tilgjengelig på Tesla Powerwall",
        description: "Tesla har ingen modus som holder Powerwall i ro. Hvis du øker \
                      reservestrømmen i Tesla-appen, slutter den å lade ut.",
    },
    fr: Text {
        title: "La mise en veille n'est pas disponible sur la Tesla Powerwall",
        description: "Tesla ne propose aucun mode qui maintient la Powerwall au repos. \
                      Augmenter la réserve de secours dans l'application Tesla l'empêche de se \
                      décharger.",
    },
    sv: Text {
        title: "Viloläge är inte tillgängligt för Tesla Powerwall",
        description: "Tesla har inget läge som håller Powerwall i vila. Om du höjer \
                      reservkraften i Tesla-appen slutar den att laddas ur.",
    },
    es: Text {
        title: "El modo inactivo no está disponible en la Tesla Powerwall",
        description: "Tesla no ofrece ningún modo que mantenga la Powerwall en reposo. Si \
                      aumenta la reserva de respaldo en la aplicación de Tesla, deja de \
                      descargarse.",
    },
};

const SMA_READ_ONLY: Table = Table {
    id: oemgate_sma::map::READ_ONLY_INTERVENTION_ID,
    de: Text {
        title: "Batteriesteuerung ist für SMA nicht verfügbar",
        description: "Die Cloud-API von SMA für Sunny Portal und ennexOS ist schreibgeschützt: \
                      Sie meldet die Batterie, bietet aber keine Möglichkeit, ihren \
                      Betriebsmodus zu ändern. Ändern Sie die Einstellungen der Batterie im \
                      Sunny Portal oder in der SMA Energy App, oder wenden Sie sich an Ihren \
                      Installateur.",
    },
    nb: Text {
        title: "Batteristyring er ikke tilgjengelig for SMA",
        description: "SMAs sky-API for Sunny Portal og ennexOS gir bare lesetilgang: det \
                      rapporterer batteriet, men gir ingen mulighet til å endre driftsmodusen. \
                      Endre batteriets innstillinger i Sunny Portal eller SMA Energy-appen, \
                      eller spør installatøren din.",
    },
    fr: Text {
        title: "Le pilotage de la batterie n'est pas disponible pour SMA",
        description: "L'API cloud de SMA pour Sunny Portal et ennexOS est en lecture seule : \
                      elle indique l'état de la batterie mais ne permet pas de changer son \
                      mode de fonctionnement. Modifiez les réglages de la batterie dans Sunny \
                      Portal ou l'application SMA Energy, ou adressez-vous à votre \
                      installateur.",
    },
    sv: Text {
        title: "Batteristyrning är inte tillgänglig för SMA",
        description: "SMA:s moln-API för Sunny Portal och ennexOS är skrivskyddat: det \
                      rapporterar batteriet men ger inget sätt att ändra dess driftläge. Ändra \
                      batteriets inställningar i Sunny Portal eller SMA Energy-appen, eller \
                      fråga din installatör.",
    },
    es: Text {
        title: "El control de la batería no está disponible para SMA",
        description: "La API en la nube de SMA para Sunny Portal y ennexOS es de solo lectura: \
                      informa de la batería, pero no permite cambiar su modo de \
                      funcionamiento. Cambie los ajustes de la batería en Sunny Portal o en la \
                      aplicación SMA Energy, o consulte a su instalador.",
    },
};

const HUAWEI_BATTERY_CONTROL: Table = Table {
    id: oemgate_huawei::map::BATTERY_CONTROL_INTERVENTION_ID,
    de: Text {
        title: "Batteriesteuerung ist über Huawei FusionSolar nicht verfügbar",
        description: "Die FusionSolar Northbound API, die oemgate nutzt, liest die Batterie, \
                      bietet aber keine Steuerung des Betriebsmodus, auf die sich oemgate \
                      verlassen kann. Ändern Sie den Arbeitsmodus in der FusionSolar-App \
                      (*Device > Battery > Working mode*) oder fragen Sie den Installateur; \
                      oemgate zeigt weiterhin den aktiven Modus an.",
    },
    nb: Text {
        title: "Batteristyring er ikke tilgjengelig gjennom Huawei FusionSolar",
        description: "FusionSolar Northbound API, som oemgate bruker, leser batteriet, men gir \
                      ingen styring av driftsmodus som oemgate kan stole på. Endre \
                      driftsmodusen i FusionSolar-appen (*Device > Battery > Working mode*) \
                      eller spør installatøren; oemgate fortsetter å vise modusen som er i \
                      bruk.",
    },
    fr: Text {
        title: "Le pilotage de la batterie n'est pas disponible via Huawei FusionSolar",
        description: "La FusionSolar Northbound API qu'utilise oemgate lit l'état de la \
                      batterie mais n'offre aucun contrôle du mode de fonctionnement sur lequel \
                      oemgate puisse compter. Changez le mode de fonctionnement dans \
                      l'application FusionSolar (*Device > Battery > Working mode*) ou \
                      demandez à l'installateur ; oemgate continue d'afficher le mode en \
                      vigueur.",
    },
    sv: Text {
        title: "Batteristyrning är inte tillgänglig via Huawei FusionSolar",
        description: "FusionSolar Northbound API, som oemgate använder, läser batteriet men \
                      erbjuder ingen styrning av driftläget som oemgate kan lita på. Ändra \
                      driftläget i FusionSolar-appen (*Device > Battery > Working mode*) eller \
                      fråga installatören; oemgate fortsätter att visa läget som används.",
    },
    es: Text {
        title: "El control de la batería no está disponible a través de Huawei FusionSolar",
        description: "La FusionSolar Northbound API que usa oemgate lee la batería, pero no \
                      ofrece un control del modo de funcionamiento en el que oemgate pueda \
                      confiar. Cambie el modo de trabajo en la aplicación FusionSolar \
                      (*Device > Battery > Working mode*) o consulte al instalador; oemgate \
                      sigue mostrando el modo en uso.",
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor_health::intervention_catalogue;

    /// Every catalogue intervention has exactly one table, every table belongs to one, and
    /// each translation is a text of its own (not empty, not the English one).
    #[test]
    fn every_catalogue_intervention_is_translated() {
        let catalogue = intervention_catalogue();
        for intervention in &catalogue {
            let tables = TABLES.iter().filter(|t| t.id == intervention.id).count();
            assert_eq!(tables, 1, "{}: {tables} tables", intervention.id);
            for language in TRANSLATED {
                let mut translated = intervention.clone();
                translate(&mut translated, language);
                let (en, got) = (&intervention.resolution, &translated.resolution);
                assert!(!got.title.trim().is_empty() && !got.description.trim().is_empty());
                assert_ne!(got.title, en.title, "{} {language}", intervention.id);
                assert_ne!(got.description, en.description, "{} {language}", intervention.id);
                // Markdown code spans survive translation.
                assert_eq!(
                    got.description.matches('`').count(),
                    en.description.matches('`').count(),
                    "{} {language}",
                    intervention.id
                );
            }
        }
        for table in TABLES {
            assert!(catalogue.iter().any(|i| i.id == table.id), "{} is no intervention", table.id);
        }
    }

    #[test]
    fn english_and_unknown_languages_leave_the_texts() {
        let original = intervention_catalogue().remove(0);
        for language in ["en-US", "ja-JP", ""] {
            let mut same = original.clone();
            translate(&mut same, language);
            assert_eq!(same, original);
        }
        assert_eq!(languages()[0], "en-US");
        assert_eq!(languages().len(), 1 + TRANSLATED.len());
    }
}
